"""Tests that drive the machine's Chromium through pages the service serves."""

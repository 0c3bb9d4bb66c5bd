"""The REST API: the reference Job Service Web API's paths and bodies, and its OpenAPI document."""

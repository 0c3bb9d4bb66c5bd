"""The REST API of the job service: the reference Job Service Web API's paths and bodies."""

from jobservice.api.app import create_app

__all__ = ["create_app"]

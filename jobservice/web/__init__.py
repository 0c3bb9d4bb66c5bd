"""The web faces of the service: the REST API (:mod:`.api`) and the dashboard (:mod:`.dashboard`),
assembled into one app (:mod:`.app`) and served by :mod:`.server`, with what both share: the
service as a dependency, API keys, errors as HTTP statuses and the request guard."""

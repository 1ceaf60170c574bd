"""The API contract: ``openapi.yaml``, generated from the routes the functions serve."""

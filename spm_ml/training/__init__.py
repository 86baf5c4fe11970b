"""Training pipelines: data in, evaluated and registered models out."""

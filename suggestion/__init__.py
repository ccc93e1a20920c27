"""tuner's suggestion server: algorithms (`suggestion.algorithms`), early stopping
(`suggestion.earlystopping`) and their gRPC services (`suggestion.service`)."""

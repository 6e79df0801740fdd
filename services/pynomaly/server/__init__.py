"""The gRPC front end: converters, servicers, error mapping and the embedded composition."""

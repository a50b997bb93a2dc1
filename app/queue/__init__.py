"""Jobs on Redis streams: keys, the tensor codec, the api-side client."""

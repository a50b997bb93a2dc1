"""Workers: pure tensors. Read jobs from Redis streams, batch, run, reply."""

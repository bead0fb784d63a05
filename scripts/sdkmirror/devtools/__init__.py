"""Not the product: the sample upstream, the demo, benchmarks, the loopback registry."""

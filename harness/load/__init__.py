"""The load lane: locust underneath, streaming-aware metrics in HDR histograms."""

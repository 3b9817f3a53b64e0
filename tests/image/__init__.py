"""Tests that run the container image `make image` built (marker ``image``, `make image-test`)."""

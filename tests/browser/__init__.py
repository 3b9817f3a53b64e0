"""Browser tests of the analyst dashboard: real headless Chromium over a pipeline-filled store."""

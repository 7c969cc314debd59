"""Audio in: sources (file, mic, loopback), the 10-second ring buffer, the hop clock."""

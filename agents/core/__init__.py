"""What the methods share: the SB3-compatible base, networks, samplers, critics and buffers."""

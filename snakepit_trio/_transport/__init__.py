"""The only place the host imports grpclib, betterproto2 or asyncio.

grpclib runs on one asyncio loop thread per pool (the bridge); everything here is driven from
Trio through the bridge, and transport exceptions are translated into TransportError here.
"""

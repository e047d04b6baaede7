"""Everything that speaks HTTP to Rackspace: the client, Identity, Cloud Servers, the in-server API."""

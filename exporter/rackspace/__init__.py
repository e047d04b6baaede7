"""Everything that speaks HTTP to Rackspace: client, Identity, Cloud Servers, in-server API."""

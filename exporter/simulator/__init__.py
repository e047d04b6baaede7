"""A simulated Rackspace cloud, for the demo and the tests."""

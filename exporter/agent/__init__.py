"""What runs on the cloud server itself, for ``agent`` and ``wait --local``.

``inserver`` reads the RackConnect in-server API within the request ``budget``;
``managedops`` reads Managed Operations (XenStore and the completion file, through
``xenstore``); ``source`` puts the two together into the server's record; ``settings``
turns the on-server flags into where to read; ``runtime`` is the agent's poll loop.
"""

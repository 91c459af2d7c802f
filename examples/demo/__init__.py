"""``otel-impact demo``: the product end to end on one machine, with no external services.

`runner` starts the processor and two instrumented services (checkout calls payments over
HTTP), drives them with customers across tiers and a feature flag, injects a fault (``pro``
customers on flag variant ``on`` fail about 30% of checkouts) and shows a live table; `services`
is the two services; `traffic` the customers and the load; `table` the terminal view.
"""

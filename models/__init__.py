"""What runs inside an environment: model definitions, data loaders, the timing callback and the worker.

Never imports runner/; must import on Python 3.6 (the 2017 environments) as well as on today's Pythons.
"""

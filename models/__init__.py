"""What runs inside an environment: model definitions, data loaders, the timing callback and the worker.

Never imports runner/, reports/ or tooling/ (none of them exists inside an environment): stdlib, numpy and Keras
only; must import on Python 3.6 (the 2017 environments) as well as on today's Pythons.
"""

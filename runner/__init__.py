"""The host side of Keras Backend Matrix: plans cells, runs each in its own environment, records and summarises.

Never imports Keras or a framework: those live in the environments, reached only through `models.worker`.
"""

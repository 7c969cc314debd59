"""beatcanvas engine: the models and the math. No threads, no sound or screen devices.

The engine never imports `live`. Import what you need from its modules (`engine.types`,
`engine.errors`, …): this package imports nothing, so naming one light module never loads the rest.
"""

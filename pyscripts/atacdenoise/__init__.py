"""atacdenoise: turn shallow ATAC-seq into the track a deep library would give.

Data flows one way: ``io`` -> ``tracks`` -> ``models``/``search`` ->
``registry`` -> ``denoise``/``evaluate``.
"""

__version__ = "0.1.0"

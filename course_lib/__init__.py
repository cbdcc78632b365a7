"""The code the lessons of the similarity-learning course share, one package per family of lessons.

    core         device, seed, profiles, the training loop ``fit``, batching
    data         MNIST and the two-digit MNIST benchmark
    similarity   lessons 01-04: distances, losses, miners, retrieval metrics, samplers, HTL's class tree
    stn          lesson 05: sampling grids, distorted MNIST, the spatial transformer
    detection    lesson 06: boxes, anchors, matching, the tiny detector, VOC AP
    pose         lesson 07: heatmaps, soft-argmax, PCK, stick figures, the pose heads
    experiments  runs over seeds;  exercises  the checkers;  viz  figures and widgets
    authoring    the student edition and the rendered course (build tooling, not for the lessons)

Import from the package: ``from course_lib.similarity import contrastive_loss``. Importing changes no setting.
CONTRIBUTING.md says where new code goes.
"""
__version__ = "0.1.0"

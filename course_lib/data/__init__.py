"""The datasets: MNIST from wherever it can be had, and the two-digit MNIST benchmark of lessons 02-04.

Run ``python -m course_lib.data download`` once with internet to get the full 70,000 MNIST images.
"""
from .mnist import mnist_folder, load_mnist, download_mnist, main
from .two_digit import class_disjoint_split, TwoDigitMNIST, load_two_digit_mnist

__all__ = [
    "mnist_folder", "load_mnist", "download_mnist", "main", "class_disjoint_split", "TwoDigitMNIST",
    "load_two_digit_mnist",
]

"""What every lesson shares: the runtime (device, seed, profile), the training loop ``fit``, batching with
``EpochSeeded``, input checks, and the parts shared by the networks.

    from course_lib.core import fit, pick_device, profile, seed_everything
"""
from .batching import to_device, EpochSeeded, TensorBatches
from .checks import check_embeddings, check_labels, check_same_device
from .models import (MNIST_MEAN, MNIST_STD, fast_layout, textbook_layout, check_images, DigitClassifier,
                    classify_step, error_rate)
from .runtime import (pick_device, seed_everything, Profile, PROFILES, profile, data_dir, significant, format_seconds,
                     timings)
from .training import (History, eval_mode, embed, fit, cosine_schedule, resume_point, Update, train_epoch,
                      save_checkpoint, load_checkpoint)

__all__ = [
    "to_device", "EpochSeeded", "TensorBatches", "check_embeddings", "check_labels", "check_same_device",
    "MNIST_MEAN", "MNIST_STD", "fast_layout", "textbook_layout", "check_images", "DigitClassifier",
    "classify_step", "error_rate", "pick_device", "seed_everything", "Profile", "PROFILES", "profile", "data_dir",
    "significant", "format_seconds", "timings", "History", "eval_mode", "embed", "fit", "cosine_schedule",
    "resume_point", "Update", "train_epoch", "save_checkpoint", "load_checkpoint",
]

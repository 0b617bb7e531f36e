"""The playbook's evaluation metrics (playbook 5.5-5.8): FID and improved precision/recall on Inception features
(through torch-fidelity), the reference statistics of a data set's real images (cached), generated images from the
EMA weights with a fixed sampler, and the held-out NLL in bits/dim.

    weights.py     where the Inception weights file is (no torch: the TUI asks it too), the one-line message
    inception.py   torch-fidelity's InceptionV3 feature extractor, its weights loaded with weights_only=True
    features.py    images in [-1, 1] -> uint8 RGB -> features, in batches on the run's device
    fid.py         feature statistics, the Frechet distance, precision/recall (k = 3): torch-fidelity's functions
    reference.py   the real images' statistics, computed once and cached under a key of contents and protocol
    generate.py    generated images' features: EMA net, fixed sampler and NFE, seeded generators, timed
    heldout.py     NLL in bits/dim on the held-out split, with the number of images
"""

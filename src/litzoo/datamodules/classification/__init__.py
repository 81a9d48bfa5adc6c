"""Image classification data: digits (embedded), ImageFolder and CIFAR-10 in their real formats."""

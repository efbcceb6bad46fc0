import torch

# The test models are tiny; one thread avoids oversubscription on shared CPUs.
torch.set_num_threads(1)

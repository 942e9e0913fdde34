"""GSS (Chen et al., CVPR 2023): maskige, posterior (VQ-VAE / DALL-E dVAE), prior, inverse."""

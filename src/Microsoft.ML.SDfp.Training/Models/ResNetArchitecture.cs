namespace Microsoft.ML.SDfp.Training.Models;

/// <summary>The ResNet variants the factory builds.</summary>
/// <remarks>
/// ResNet-18 … ResNet-152 follow torchvision's ImageNet topology (4 stages, 64…512 base width,
/// BasicBlock for 18/34, Bottleneck for 50/101/152). ResNet-20/32/56 are the CIFAR networks of
/// He et al. (2016): 3 stages of 16/32/64 channels with (depth − 2)/6 BasicBlocks each.
/// </remarks>
public enum ResNetArchitecture
{
    /// <summary>torchvision ResNet-18: BasicBlocks [2, 2, 2, 2], 512-wide embedding.</summary>
    ResNet18,

    /// <summary>torchvision ResNet-34: BasicBlocks [3, 4, 6, 3], 512-wide embedding.</summary>
    ResNet34,

    /// <summary>torchvision ResNet-50: Bottlenecks [3, 4, 6, 3], 2048-wide embedding.</summary>
    ResNet50,

    /// <summary>torchvision ResNet-101: Bottlenecks [3, 4, 23, 3], 2048-wide embedding.</summary>
    ResNet101,

    /// <summary>torchvision ResNet-152: Bottlenecks [3, 8, 36, 3], 2048-wide embedding.</summary>
    ResNet152,

    /// <summary>CIFAR ResNet-20: 3 BasicBlocks per stage, 64-wide embedding.</summary>
    ResNet20,

    /// <summary>CIFAR ResNet-32: 5 BasicBlocks per stage, 64-wide embedding.</summary>
    ResNet32,

    /// <summary>CIFAR ResNet-56: 9 BasicBlocks per stage, 64-wide embedding.</summary>
    ResNet56,
}

namespace Microsoft.ML.SDfp.Training.Models;

/// <summary>Where a conv/linear sits in a ResNet, which decides its configuration under a <see cref="QuantizationPolicy"/>.</summary>
public enum ResNetLayerRole
{
    /// <summary>The stem conv, <c>conv1</c>.</summary>
    FirstConv,

    /// <summary>Any conv inside the residual stages, including the downsample projections.</summary>
    Body,

    /// <summary>The classifier, <c>fc</c>.</summary>
    LastLinear,
}

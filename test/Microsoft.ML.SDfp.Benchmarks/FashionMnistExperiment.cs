namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>The paper's comparison (FP32, DFP, S-DFP, auto shift) on Fashion-MNIST.</summary>
internal static class FashionMnistExperiment
{
    public static int Run(string[] args) => throw new NotImplementedException("owned by the models/training work");
}

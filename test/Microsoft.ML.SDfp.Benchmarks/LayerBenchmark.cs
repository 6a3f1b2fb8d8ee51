namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>Quantised conv layer forward+backward against FP32, side by side in one run.</summary>
internal static class LayerBenchmark
{
    public static int Run(string[] args) => throw new NotImplementedException("owned by the numerics work");
}

using Microsoft.ML.Data;
using Microsoft.ML.SDfp.Onnx;
using Microsoft.ML.SDfp.Scoring;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>The scoring routes the scoring benchmarks compare, loaded from one model.zip.</summary>
internal static class ScoringRoutes
{
    public static readonly string[] All = ["torchsharp", "ort-int8", "ort-fp32"];

    /// <summary>Loads <paramref name="modelPath"/> for <paramref name="route"/>.</summary>
    public static ITransformer Load(MLContext ml, string modelPath, string route)
    {
        if (route == "torchsharp")
        {
            return ml.Model.Load(modelPath, out _);
        }

        // ONNX Runtime routes never touch TorchSharp, so libtorch is not even loaded into this process.
        var chain = (TransformerChain<ITransformer>)ml.Model.LoadWithOnnxRuntime(modelPath, out _);
        if (!chain.Any(t => t is SDfpOnnxImageClassifier))
        {
            throw new InvalidOperationException($"{modelPath} is in the first model format, which only the training package loads; re-save it once with this version (runner 'resave').");
        }
        return route switch
        {
            "ort-int8" => chain,
            "ort-fp32" => new TransformerChain<ITransformer>(chain.Select(t =>
                t is SDfpOnnxImageClassifier onnx ? new SDfpOnnxImageClassifier(onnx.Host, onnx.ToModelFile(), OnnxGraphKind.Float) : t).ToArray()),
            _ => throw new ArgumentException($"Unknown route '{route}'; use one of {string.Join(", ", All)}."),
        };
    }

    /// <summary>Rows (ImagePath, Label) of every image under <paramref name="root"/> (root/&lt;label&gt;/*.png), in a stable order.</summary>
    public static List<ImageRow> Images(string root, int limit) =>
        Directory.EnumerateFiles(root, "*.png", SearchOption.AllDirectories)
            .OrderBy(p => p, StringComparer.Ordinal)
            .Take(limit)
            .Select(p => new ImageRow { ImagePath = p, Label = Path.GetFileName(Path.GetDirectoryName(p))! })
            .ToList();
}

/// <summary>An input row of the image-folder pipelines.</summary>
internal sealed class ImageRow
{
    public string ImagePath { get; set; } = string.Empty;

    public string Label { get; set; } = string.Empty;
}

/// <summary>The scored columns.</summary>
internal sealed class ImagePrediction
{
    public string? PredictedLabel { get; set; }

    public float[]? Score { get; set; }
}

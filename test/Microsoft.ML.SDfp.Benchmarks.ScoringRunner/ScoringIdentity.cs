using System.Globalization;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>
/// Scores every image with TorchSharp and with ONNX Runtime on the exact integer graph and compares: same predicted
/// label for every image, every score within 1e-5. Exit code 0 only when both hold.
/// </summary>
internal static class ScoringIdentity
{
    private const string Usage = """
        usage: Microsoft.ML.SDfp.Benchmarks scoring-identity --model model.zip --images DIR [--limit N]
          --model P    a model.zip saved by the trainer (samples/ImageClassification)
          --images D   image folder root/<label>/*.png (samples/ImageClassification exports Fashion-MNIST's test set to DATA/test)
          --limit N    at most N images (default all)
        """;

    public static int Run(string[] args)
    {
        string? model = null, images = null;
        int limit = int.MaxValue;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--model": model = args[++i]; break;
                case "--images": images = args[++i]; break;
                case "--limit": limit = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default: Console.Error.WriteLine(Usage); return 2;
            }
        }

        if (model is null || images is null)
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }

        var ml = new MLContext(seed: 1);
        List<ImageRow> rows = ScoringRoutes.Images(images, limit);
        IDataView data = ml.Data.LoadFromEnumerable(rows);
        List<ImagePrediction> Score(string route) =>
            ml.Data.CreateEnumerable<ImagePrediction>(ScoringRoutes.Load(ml, model, route).Transform(data), reuseRowObject: false).ToList();
        List<ImagePrediction> torch = Score("torchsharp");
        List<ImagePrediction> onnx = Score("ort-int8");

        int sameLabel = 0, within = 0, identical = 0;
        double maxDiff = 0;
        for (int i = 0; i < rows.Count; i++)
        {
            sameLabel += torch[i].PredictedLabel == onnx[i].PredictedLabel ? 1 : 0;
            float diff = torch[i].Score!.Zip(onnx[i].Score!, (a, b) => MathF.Abs(a - b)).Max();
            within += diff <= 1e-5f ? 1 : 0;
            identical += torch[i].Score!.AsSpan().SequenceEqual(onnx[i].Score!) ? 1 : 0;
            maxDiff = Math.Max(maxDiff, diff);
        }

        Console.WriteLine($"{rows.Count} images: same label {sameLabel}/{rows.Count}, all scores within 1e-5 {within}/{rows.Count} " +
            $"(max |difference| {maxDiff:E2}), bit-identical {identical}/{rows.Count}");
        return sameLabel == rows.Count && within == rows.Count ? 0 : 1;
    }
}

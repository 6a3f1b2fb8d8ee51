using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.SDfp.Trainers;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>
/// Memory of <c>PredictionEngine</c> scoring on one route (<see cref="ScoringRoutes"/>, TorchSharp by default): managed
/// bytes allocated per prediction (<c>GC.GetAllocatedBytesForCurrentThread</c>, after a warm-up), the process's resident
/// set size (RSS) while it scores, and the number of garbage collections. Without <c>--model</c> it trains a small ResNet-20 (S-DFP8, 400
/// Fashion-MNIST images, 1 epoch) first, so the command works on a clean clone; the RSS then includes training's, so
/// the README's figures come from <c>--train-only</c> followed by a fresh process with <c>--model</c>.
/// </summary>
internal static class ScoringMemoryBenchmark
{
    public static int Run(string[] args)
    {
        if (args.Contains("--help"))
        {
            Console.WriteLine($"scoring-memory [--model model.zip] [--images folder] [--predictions 100000] [--threads 1] [--warmup 200] [--route {string.Join("|", ScoringRoutes.All)}]");
            Console.WriteLine("scoring-memory --train-only model.zip   (train the small model and save it, so a fresh process can score it)");
            return 0;
        }

        string? model = Option(args, "--model");
        string? images = Option(args, "--images");
        int predictions = int.Parse(Option(args, "--predictions") ?? "100000", CultureInfo.InvariantCulture);
        int threads = int.Parse(Option(args, "--threads") ?? "1", CultureInfo.InvariantCulture);
        int warmup = int.Parse(Option(args, "--warmup") ?? "200", CultureInfo.InvariantCulture);
        string route = Option(args, "--route") ?? "torchsharp";
        bool torchSharp = route == "torchsharp";
        string scratch = Directory.CreateTempSubdirectory("sdfp-scoring-memory-").FullName;
        try
        {
            var ml = new MLContext(seed: 1);
            if (images is null)
            {
                images = Path.Combine(scratch, "images");
                ImageClassification.FashionMnistExporter.ExportIfMissing(images, train: false, 400);
            }

            List<ImageRow> rows = ScoringRoutes.Images(images, int.MaxValue);
            if (Option(args, "--train-only") is { } trainOnly)
            {
                Train(ml, rows, trainOnly);
                return 0;
            }

            if (model is null)
            {
                model = Path.Combine(scratch, "model.zip");
                Train(ml, rows, model);
            }

            long rssBeforeLoad = Rss();
            ITransformer transformer = torchSharp ? ml.Model.LoadChecked(model, out _) : ScoringRoutes.Load(ml, model, route);
            Console.WriteLine($"model {model}, route {route}, {rows.Count} images, {predictions} predictions per thread, {threads} thread(s), load average {File.ReadAllText("/proc/loadavg").Trim()}");
            Console.WriteLine($"RSS before load {Mb(rssBeforeLoad)}, after load {Mb(Rss())}");
            int gen0 = GC.CollectionCount(0), gen1 = GC.CollectionCount(1), gen2 = GC.CollectionCount(2);
            long peak = 0;
            var perThread = new double[threads];
            var stopwatch = Stopwatch.StartNew();
            using var sampler = new Timer(_ => Interlocked.Exchange(ref peak, Math.Max(Interlocked.Read(ref peak), Rss())), null, 0, 100);
            var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
            {
                var engine = ml.Model.CreatePredictionEngine<ImageRow, ImagePrediction>(transformer);
                var output = new ImagePrediction();
                for (int i = 0; i < warmup; i++)
                {
                    engine.Predict(rows[i % rows.Count], ref output);
                }

                (long Created, long Disposed) tensors = torchSharp ? TensorCounts() : default;
                long before = GC.GetAllocatedBytesForCurrentThread();
                for (int i = 0; i < predictions; i++)
                {
                    engine.Predict(rows[(i + t) % rows.Count], ref output);
                    if (t == 0 && (i + 1) % Math.Max(1, predictions / 10) == 0)
                    {
                        Console.WriteLine($"  {i + 1,8} predictions: RSS {Mb(Rss())}, managed heap committed {Mb(GC.GetGCMemoryInfo().TotalCommittedBytes)}, {stopwatch.Elapsed.TotalSeconds:F0} s");
                    }
                }

                perThread[t] = (double)(GC.GetAllocatedBytesForCurrentThread() - before) / predictions;
                if (t == 0 && torchSharp)
                {
                    // Tensors not disposed are freed by their finalizer, with their native memory, only when a GC runs.
                    long madeNow = TensorCounts().Created - tensors.Created;
                    long freedNow = TensorCounts().Disposed - tensors.Disposed;
                    Console.WriteLine($"tensors per prediction (thread 0): {(double)madeNow / predictions:F1} created, {(double)freedNow / predictions:F1} disposed");
                }
            })).ToList();
            workers.ForEach(w => w.Start());
            workers.ForEach(w => w.Join());
            Console.WriteLine($"allocated per prediction (managed, this thread): {string.Join(", ", perThread.Select(b => $"{b / 1024:F1} KB"))}");
            Console.WriteLine($"RSS peak {Mb(Math.Max(peak, Rss()))}, at end {Mb(Rss())}; GCs gen0 {GC.CollectionCount(0) - gen0}, gen1 {GC.CollectionCount(1) - gen1}, gen2 {GC.CollectionCount(2) - gen2}; " +
                $"{threads * (long)predictions / stopwatch.Elapsed.TotalSeconds:F0} predictions/s");
            (transformer as IEnumerable<ITransformer>)?.OfType<IDisposable>().ToList().ForEach(d => d.Dispose());
            return 0;
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    private static void Train(MLContext ml, List<ImageRow> rows, string path)
    {
        var options = new SDfpImageClassificationTrainer.Options { FeatureColumnName = "Image", Epochs = 1, BatchSize = 32, ImageWidth = 28, ImageHeight = 28, Seed = 1, ValidationSetFraction = 0 };
        IDataView data = ml.Data.LoadFromEnumerable(rows);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.LoadRawImageBytes("Image", null, "ImagePath"))
            .Append(ml.MulticlassClassification.Trainers.SDfpImageClassification(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var model = pipeline.Fit(data);
        ml.Model.SaveAtomically(model, data.Schema, path);
        model.OfType<IDisposable>().ToList().ForEach(d => d.Dispose());
    }

    // Its own method, so that the ONNX Runtime routes never load TorchSharp.
    private static (long Created, long Disposed) TensorCounts()
    {
        var tensors = TorchSharp.DisposeScopeManager.Statistics.TensorStatistics;
        return (tensors.CreatedInScopeCount + tensors.CreatedOutsideScopeCount, tensors.DisposedInScopeCount + tensors.DisposedOutsideScopeCount);
    }

    private static long Rss()
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
            }
        }

        return 0;
    }

    private static string Mb(long bytes) => $"{bytes / (1024.0 * 1024):F0} MB";

    private static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}

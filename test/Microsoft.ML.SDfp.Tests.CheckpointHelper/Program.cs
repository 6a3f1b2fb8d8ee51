using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.SDfp.Trainers;

// Usage: CheckpointHelper <image folder> <checkpoint folder or "none"> [--kill-while-writing N | --kill-during N]
// Trains the stage for 3 epochs on the first 64 images under the folder (label = subfolder), then prints
// "epoch N" for every epoch it ran and one line per image: "<path>\t<score bits as hex, comma separated>".
// --kill-while-writing N: SIGKILLs itself once the checkpoint of epoch N is being written (its temporary file has bytes).
// --kill-during N: SIGKILLs itself half-way through epoch N's training (timed by epoch N-1, so N >= 3).
if (args.Length is not (2 or 4))
{
    Console.Error.WriteLine("usage: CheckpointHelper <image folder> <checkpoint folder|none> [--kill-while-writing N | --kill-during N]");
    return 2;
}

string? checkpoint = args[1] == "none" ? null : args[1];
string? kill = args.Length == 4 ? args[2] : null;
int killEpoch = args.Length == 4 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 0;

var rows = Directory.EnumerateFiles(args[0], "*.png", SearchOption.AllDirectories)
    .OrderBy(p => p, StringComparer.Ordinal)
    .Where((_, i) => i % 10 == 0)
    .Take(64)
    .Select(p => new ImageRow { ImagePath = p, Label = Path.GetFileName(Path.GetDirectoryName(p))! })
    .ToList();

var clock = Stopwatch.StartNew();
TimeSpan lastEpochEnd = TimeSpan.Zero, lastEpochLength = TimeSpan.Zero;
var options = new SDfpImageClassificationTrainer.Options
{
    FeatureColumnName = "Image",
    Epochs = 3,
    BatchSize = 16,
    LearningRate = 0.05,
    ImageWidth = 28,
    ImageHeight = 28,
    ValidationSetFraction = 0,
    Seed = 1,
    CheckpointDirectory = checkpoint,
    MetricsCallback = m =>
    {
        Console.WriteLine($"epoch {m.Epoch}");
        Console.Out.Flush();
        lastEpochLength = clock.Elapsed - lastEpochEnd;
        lastEpochEnd = clock.Elapsed;
        // The checkpoint of epoch N is written after epoch N ends and before its callback, so the watch starts at the
        // callback of the epoch before.
        if (m.Epoch == killEpoch - 1)
        {
            new Thread(kill == "--kill-while-writing" ? KillWhileWriting : KillDuringEpoch) { IsBackground = true }.Start();
        }
    },
};

var ml = new MLContext(seed: 1);
IDataView data = ml.Data.LoadFromEnumerable(rows);
var model = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.LoadRawImageBytes("Image", null, "ImagePath"))
    .Append(ml.MulticlassClassification.Trainers.SDfpImageClassification(options))
    .Fit(data);
var scored = ml.Data.CreateEnumerable<ScoredRow>(model.Transform(data), reuseRowObject: false).ToList();
for (int i = 0; i < rows.Count; i++)
{
    string bits = string.Join(",", scored[i].Score!.Select(s => BitConverter.SingleToInt32Bits(s).ToString("X8", CultureInfo.InvariantCulture)));
    Console.WriteLine($"{rows[i].ImagePath}\t{bits}");
}

return 0;

void KillWhileWriting()
{
    // The atomic write's temporary file starts with a dot; the checkpoint itself does not.
    while (true)
    {
        foreach (var file in new DirectoryInfo(checkpoint!).EnumerateFiles(".*"))
        {
            if (file.Length > 0)
            {
                Console.WriteLine($"killed while writing {file.Name} ({file.Length} bytes so far)");
                Console.Out.Flush();
                Process.GetCurrentProcess().Kill();
            }
        }
    }
}

void KillDuringEpoch()
{
    Thread.Sleep(lastEpochLength / 2);
    Console.WriteLine($"killed during epoch {killEpoch}, {lastEpochLength.TotalSeconds / 2:F2} s in");
    Console.Out.Flush();
    Process.GetCurrentProcess().Kill();
}

internal sealed class ImageRow
{
    public string ImagePath { get; set; } = string.Empty;

    public string Label { get; set; } = string.Empty;
}

internal sealed class ScoredRow
{
    public float[]? Score { get; set; }
}

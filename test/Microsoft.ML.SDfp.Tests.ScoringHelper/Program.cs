using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

// Usage: ScoringHelper <model.zip> <image> [<image> ...]
// Prints one line per image: "<path>\t<predicted label>\t<score bits as hex, comma separated>".
// Deliberately does not reference any Microsoft.ML.SDfp type: ML.NET must find the loader on its own.
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: ScoringHelper <model.zip> <image> [<image> ...]");
    return 2;
}

var ml = new MLContext(seed: 1);
ITransformer model = ml.Model.Load(args[0], out DataViewSchema _);
var rows = args.Skip(1).Select(p => new ImageRow { ImagePath = p, Label = string.Empty }).ToList();
IDataView scored = model.Transform(ml.Data.LoadFromEnumerable(rows));
var results = ml.Data.CreateEnumerable<ScoredRow>(scored, reuseRowObject: false).ToList();
for (int i = 0; i < rows.Count; i++)
{
    string bits = string.Join(",", results[i].Score!.Select(s => BitConverter.SingleToInt32Bits(s).ToString("X8", CultureInfo.InvariantCulture)));
    Console.WriteLine($"{rows[i].ImagePath}\t{results[i].PredictedLabel}\t{bits}");
}

return 0;

internal sealed class ImageRow
{
    public string ImagePath { get; set; } = string.Empty;

    public string Label { get; set; } = string.Empty;
}

internal sealed class ScoredRow
{
    public string? PredictedLabel { get; set; }

    public float[]? Score { get; set; }
}

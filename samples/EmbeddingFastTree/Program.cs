using System.Globalization;
using ImageClassification;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.SDfp.Scoring;

// Trains FastTree (one-versus-all) on the embedding of a model saved by samples/ImageClassification:
//   dotnet run -c Release --project samples/EmbeddingFastTree -- [model.zip] [--data DIR] [--limit N]
// DIR holds train/<label>/*.png and test/<label>/*.png (the ImageClassification sample writes them).
string modelPath = "model.zip";
string dataDirectory = Path.Combine(Environment.CurrentDirectory, "data", "fashion-mnist-images");
int limit = 5000;
for (int i = 0; i < args.Length; i++)
{
    string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"Option {args[i]} needs a value.");
    switch (args[i])
    {
        case "--data": dataDirectory = Path.GetFullPath(Value()); break;
        case "--limit": limit = int.Parse(Value(), CultureInfo.InvariantCulture); break;
        default: modelPath = args[i]; break;
    }
}

var ml = new MLContext(seed: 1);
ITransformer loaded = ml.Model.LoadChecked(modelPath, out _);
if (loaded is not TransformerChain<ITransformer> chain || chain.OfType<SDfpImageClassificationTransformer>().SingleOrDefault() is not { } classifier)
{
    Console.Error.WriteLine($"{modelPath} is not a pipeline with an S-DFP image classifier in it.");
    return 1;
}

// Everything before the classifier (label to key, image loading) prepares its input; the featuriser replaces it.
var prefix = chain.TakeWhile(t => t is not SDfpImageClassificationTransformer).ToList();
var featurizer = classifier.AsFeaturizer("Embedding");
IDataView Featurize(string folder, int? take)
{
    var rows = ImageData.FromFolder(folder);
    // Spread a limited slice over every class: the folders are read in label order.
    var list = rows.ToList();
    var picked = take is int n && n < list.Count ? list.Where((_, index) => index % (list.Count / n) == 0).Take(n) : list;
    IDataView data = ml.Data.LoadFromEnumerable(picked);
    return featurizer.Transform(prefix.Aggregate(data, (d, t) => t.Transform(d)));
}

Console.WriteLine($"Featurising up to {limit} training images with {classifier.Architecture} ({classifier.NumberFormat}), embedding size {classifier.EmbeddingSize}...");
IDataView train = ml.Data.Cache(Featurize(Path.Combine(dataDirectory, "train"), limit));
var trainer = ml.MulticlassClassification.Trainers.OneVersusAll(
    ml.BinaryClassification.Trainers.FastTree(labelColumnName: "Label", featureColumnName: "Embedding"),
    labelColumnName: "Label");
ITransformer fastTree = trainer.Fit(train);

IDataView test = Featurize(Path.Combine(dataDirectory, "test"), null);
MulticlassClassificationMetrics metrics = ml.MulticlassClassification.Evaluate(fastTree.Transform(test), "Label");
Console.WriteLine($"FastTree on S-DFP embeddings: test micro accuracy {metrics.MicroAccuracy:P2}, macro accuracy {metrics.MacroAccuracy:P2}");
return 0;

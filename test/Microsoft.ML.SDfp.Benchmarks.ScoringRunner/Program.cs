using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.SDfp.Benchmarks;

// Started by the benchmarks' "scoring" and "scoring-identity" commands:
//   measure <route> <model.zip> <images> <rows>   one route's measurements, printed as a RESULT line
//   identity --model model.zip --images DIR [--limit N]
//   resave <from.zip> <to.zip>                     re-saves a model in the current format
// Run directly (dotnet run -c Release --project test/Microsoft.ML.SDfp.Benchmarks.ScoringRunner -- scoring-memory --help):
//   scoring-memory [options]                       PredictionEngine memory: bytes allocated per prediction, RSS, GCs
return args.FirstOrDefault() switch
{
    "measure" when args.Length == 5 => ScoringMeasurement.Run(args[2], args[3], int.Parse(args[4], CultureInfo.InvariantCulture), args[1]),
    "identity" => ScoringIdentity.Run(args[1..]),
    "resave" when args.Length == 3 => Resave(args[1], args[2]),
    "scoring-memory" => ScoringMemoryBenchmark.Run(args[1..]),
    _ => Usage(),
};

// Loads a model (any format this version reads) and saves it in the current format.
static int Resave(string from, string to)
{
    var ml = new MLContext();
    ITransformer model = ml.Model.Load(from, out DataViewSchema schema);
    ml.Model.Save(model, schema, to);
    return 0;
}

static int Usage()
{
    Console.Error.WriteLine("usage: Microsoft.ML.SDfp.Benchmarks.ScoringRunner measure <route> <model.zip> <images> <rows> | identity --model P --images D [--limit N] | resave <from.zip> <to.zip> | scoring-memory [--help]");
    return 2;
}

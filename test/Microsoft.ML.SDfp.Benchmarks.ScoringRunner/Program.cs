using System.Globalization;
using Microsoft.ML.SDfp.Benchmarks;

// Started by the benchmarks' "scoring" and "scoring-identity" commands:
//   measure <route> <model.zip> <images> <rows>   one route's measurements, printed as a RESULT line
//   identity --model model.zip --images DIR [--limit N]
return args.FirstOrDefault() switch
{
    "measure" when args.Length == 5 => ScoringMeasurement.Run(args[2], args[3], int.Parse(args[4], CultureInfo.InvariantCulture), args[1]),
    "identity" => ScoringIdentity.Run(args[1..]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Microsoft.ML.SDfp.Benchmarks.ScoringRunner measure <route> <model.zip> <images> <rows> | identity --model P --images D [--limit N]");
    return 2;
}

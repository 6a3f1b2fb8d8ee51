using System.Globalization;
using Microsoft.ML.SDfp.Distributed.Tests.RankHelper;

// Every line printed starts with "rank R: " so the tests can tell the ranks apart in mpirun's merged output.
var mode = args.Length > 0 ? args[0] : "";
return mode switch
{
    "binding" => BindingChecks.Run(),
    "exchange" => BindingChecks.Exchange(args[1], int.Parse(args[2], CultureInfo.InvariantCulture), args.Length > 3 && args[3] == "nan"),
    "train" => TinyTraining.Run(args.Skip(1).ToArray()),
    "stage" => StageTraining.Run(args.Skip(1).ToArray()),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: binding | exchange Fp32|SDfp BITS [nan] | train key=value... | stage key=value...");
    return 2;
}

using Microsoft.ML.SDfp.Benchmarks;

// Usage: dotnet run -c Release --project test/Microsoft.ML.SDfp.Benchmarks -- <command> [options]
return args.FirstOrDefault() switch
{
    "layer" => LayerBenchmark.Run(args[1..]),
    "step" => StepBenchmark.Run(args[1..]),
    "fashion-mnist" => FashionMnistExperiment.Run(args[1..]),
    "fashion-mnist-merge" => ResultsMerge.Run(args[1..]),
    "bn-eval" => BatchNormEvaluation.Run(args[1..]),
    "scaling" => ScalingModel.Run(args[1..]),
    "data-parallel" => DataParallelBenchmark.Run(args[1..]),
    "scoring" => ScoringBenchmark.Run(args[1..]),
    "scoring-identity" => RunScoringIdentity(args[1..]),
    _ => Usage(),
};

static int RunScoringIdentity(string[] args)
{
    using var runner = System.Diagnostics.Process.Start(ScoringBenchmark.Runner(["identity", .. args]))!;
    runner.WaitForExit();
    return runner.ExitCode;
}

static int Usage()
{
    Console.Error.WriteLine("usage: Microsoft.ML.SDfp.Benchmarks layer [--help] | step [--help] | fashion-mnist [--help] | fashion-mnist-merge [--help] | scoring [--help] | scoring-identity [--help] | bn-eval [--help] | scaling [--threads N] [--rounds N] [--large-batch N] [--step-ms A,B,C] | data-parallel [--threads N] [--replicas N] [--exchange Fp32|SDfp] [--train-limit N] [--test-limit N] [--epochs N] [--seed N]");
    return 2;
}

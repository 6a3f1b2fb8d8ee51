using Microsoft.ML.SDfp.Publicizer;

// Usage: Microsoft.ML.SDfp.Publicizer <input.dll> <output.dll> [<input.dll> <output.dll> ...]
// Each input is read with its own directory on the resolver path and written to the output path atomically.
if (args.Length == 0 || args.Length % 2 != 0)
{
    Console.Error.WriteLine("usage: Microsoft.ML.SDfp.Publicizer <input.dll> <output.dll> [<input.dll> <output.dll> ...]");
    return 2;
}

try
{
    for (int i = 0; i < args.Length; i += 2)
    {
        AssemblyPublicizer.Result result = AssemblyPublicizer.Publicize(args[i], args[i + 1]);
        Console.WriteLine($"Publicized {Path.GetFileName(args[i])}: {result.Types} types, {result.Methods} methods, {result.Fields} fields made public -> {args[i + 1]}");
    }
    return 0;
}
catch (Exception ex) when (ex is IOException or BadImageFormatException or UnauthorizedAccessException or ArgumentException)
{
    Console.Error.WriteLine($"error SDFP0001: {ex.Message}");
    return 1;
}

using Mono.Cecil;

namespace Microsoft.ML.SDfp.Publicizer;

/// <summary>
/// Rewrites an assembly so that every type, method and field is public. The copy is used only as a
/// compile-time reference; the untouched original is what runs (with IgnoresAccessChecksTo).
/// </summary>
public static class AssemblyPublicizer
{
    /// <summary>How many members had their accessibility widened.</summary>
    public sealed record Result(int Types, int Methods, int Fields);

    /// <summary>Publicizes <paramref name="inputPath"/> into <paramref name="outputPath"/> (temp file + rename).</summary>
    public static Result Publicize(string inputPath, string outputPath)
    {
        if (!File.Exists(inputPath))
        {
            throw new FileNotFoundException($"Assembly to publicize not found: '{inputPath}'.", inputPath);
        }

        using var resolver = new DefaultAssemblyResolver();
        resolver.AddSearchDirectory(Path.GetDirectoryName(Path.GetFullPath(inputPath))!);
        // Read fully into memory so the input file is not held open while the output is written.
        using var module = ModuleDefinition.ReadModule(inputPath, new ReaderParameters { AssemblyResolver = resolver, InMemory = true });

        int types = 0, methods = 0, fields = 0;
        foreach (TypeDefinition type in module.GetTypes())
        {
            types += MakePublic(type) ? 1 : 0;

            // An event's backing field shares the event's name; publishing both makes every use of the
            // name ambiguous for the compiler, so those fields stay as they are.
            var eventNames = new HashSet<string>(type.Events.Select(e => e.Name), StringComparer.Ordinal);
            foreach (MethodDefinition method in type.Methods)
            {
                if (!method.IsPublic)
                {
                    method.IsPublic = true;
                    methods++;
                }
            }

            foreach (FieldDefinition field in type.Fields)
            {
                if (!field.IsPublic && !eventNames.Contains(field.Name))
                {
                    field.IsPublic = true;
                    fields++;
                }
            }
        }

        string fullOutput = Path.GetFullPath(outputPath);
        Directory.CreateDirectory(Path.GetDirectoryName(fullOutput)!);
        string temp = fullOutput + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            module.Write(temp);
            File.Move(temp, fullOutput, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }

        return new Result(types, methods, fields);
    }

    private static bool MakePublic(TypeDefinition type)
    {
        if (type.IsNested)
        {
            if (type.IsNestedPublic)
            {
                return false;
            }

            type.IsNestedPublic = true;
            return true;
        }

        if (type.IsPublic)
        {
            return false;
        }

        type.IsPublic = true;
        return true;
    }
}

using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Runtime;
using Microsoft.ML.SDfp.Scoring;
using Microsoft.ML.SDfp.Persistence;

[assembly: LoadableClass(typeof(SDfpImageClassifier), typeof(SDfpImageClassifierLoader), null, typeof(SignatureLoadModel),
    "S-DFP Image Classifier", SDfpImageClassifier.LoaderSignature)]

namespace Microsoft.ML.SDfp.Scoring;

/// <summary>
/// ML.NET's loader of S-DFP image classifiers (model format 0x00010002 and later), found by <c>mlContext.Model.Load</c>
/// from the loader name in the model file. It scores with TorchSharp when the training package is deployed (unless
/// <see cref="SDfpScoringModelOperations.LoadWithOnnxRuntime(ModelOperationsCatalog, string, out DataViewSchema)"/>
/// asks otherwise) and with ONNX Runtime when it is not.
/// </summary>
internal static class SDfpImageClassifierLoader
{
    private const string TrainingAssemblyName = "Microsoft.ML.SDfp";

    private static readonly Lazy<Func<IHostEnvironment, ClassifierModelFile, SDfpImageClassifier>?> TorchSharpFactory = new(FindTorchSharpFactory);

    [ThreadStatic]
    private static bool t_forceOnnxRuntime;

    /// <summary>Runs <paramref name="load"/> with this thread's loads going to ONNX Runtime.</summary>
    internal static T WithOnnxRuntime<T>(Func<T> load)
    {
        bool previous = t_forceOnnxRuntime;
        t_forceOnnxRuntime = true;
        try
        {
            return load();
        }
        finally
        {
            t_forceOnnxRuntime = previous;
        }
    }

    // Called by ML.NET's model loader through the LoadableClass attribute (SignatureLoadModel).
    private static SDfpImageClassifier Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(ctx);
        ClassifierModelFile.CheckVersion(ctx, SDfpImageClassifier.GetVersionInfo());
        ClassifierModelFile file = ClassifierModelFile.Read(env, ctx);
        return !t_forceOnnxRuntime && TorchSharpFactory.Value is { } torchSharp
            ? torchSharp(env, file)
            : new SDfpOnnxImageClassifier(env, file);
    }

    private static Func<IHostEnvironment, ClassifierModelFile, SDfpImageClassifier>? FindTorchSharpFactory()
    {
        Assembly training;
        try
        {
            training = Assembly.Load(TrainingAssemblyName);
        }
        catch (FileNotFoundException)
        {
            return null; // a scoring-only app: no training package, so ONNX Runtime
        }

        Type? factory = training.GetCustomAttribute<TorchSharpScoringAttribute>()?.Factory;
        MethodInfo? method = factory?.GetMethod("FromModelFile", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic,
            [typeof(IHostEnvironment), typeof(ClassifierModelFile)]);
        return method?.CreateDelegate<Func<IHostEnvironment, ClassifierModelFile, SDfpImageClassifier>>();
    }
}

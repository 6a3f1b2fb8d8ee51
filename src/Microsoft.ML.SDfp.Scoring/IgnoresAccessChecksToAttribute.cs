// The runtime honours this attribute (each assembly declares its own copy): it lets this assembly call the ML.NET
// internals that the publicised compile references expose (persistence, ONNX export). See build/Publicize.targets.
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Core")]
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Data")]
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.OnnxConverter")]

namespace System.Runtime.CompilerServices
{
    /// <summary>Lets this assembly access non-public members of the named assembly at run time.</summary>
    [AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
    internal sealed class IgnoresAccessChecksToAttribute : Attribute
    {
        /// <summary>Creates the attribute for <paramref name="assemblyName"/>.</summary>
        public IgnoresAccessChecksToAttribute(string assemblyName) => AssemblyName = assemblyName;

        /// <summary>The simple name of the assembly whose internals are accessed.</summary>
        public string AssemblyName { get; }
    }
}

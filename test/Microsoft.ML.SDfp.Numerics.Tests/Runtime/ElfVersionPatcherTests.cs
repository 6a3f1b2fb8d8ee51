using Microsoft.ML.SDfp.Runtime;
using Xunit;

namespace Microsoft.ML.SDfp.Numerics.Tests.Runtime;

/// <summary>
/// The ELF edit that lets TorchSharp 0.107.0 load against GCC 12's libstdc++: one version
/// requirement made weak, nothing else touched, and refused where it would be unsound.
/// </summary>
public class ElfVersionPatcherTests
{
    private static readonly ElfImage Packaged = ElfImage.Load(RepositoryPaths.PackagedLibTorchSharp);

    [Fact]
    public void TorchSharp_0_107_requires_GLIBCXX_3_4_32_from_libstdcxx()
    {
        var need = Assert.Single(Packaged.Needs, n => n.Name == "GLIBCXX_3.4.32");
        Assert.Equal("libstdc++.so.6", need.File);
        Assert.False(need.IsWeak);
        Assert.Contains("libtorch_cpu.so", Packaged.NeededLibraries);
    }

    [Fact]
    public void No_relocation_binds_a_GLIBCXX_3_4_32_symbol()
    {
        var need = Packaged.Needs.Single(n => n.Name == "GLIBCXX_3.4.32");
        Assert.Empty(Packaged.RelocatedSymbolsOfVersion(need.Index));
    }

    [Fact]
    public void Nothing_is_unsatisfied_when_libstdcxx_provides_every_version()
    {
        var everything = Packaged.Needs.Select(n => n.Name).ToList();
        Assert.Empty(ElfVersionPatcher.Unsatisfied(Packaged, "libstdc++.so.6", everything));
    }

    [Fact]
    public void Only_versions_missing_from_the_provider_are_unsatisfied()
    {
        var gcc12 = Packaged.Needs.Where(n => n.Name != "GLIBCXX_3.4.32").Select(n => n.Name).ToList();
        var missing = ElfVersionPatcher.Unsatisfied(Packaged, "libstdc++.so.6", gcc12);
        Assert.Equal(new[] { "GLIBCXX_3.4.32" }, missing.Select(m => m.Name));
    }

    [Fact]
    public void Weakening_changes_exactly_the_flag_bit_of_that_one_entry()
    {
        var need = Packaged.Needs.Single(n => n.Name == "GLIBCXX_3.4.32");
        var patched = ElfVersionPatcher.Weaken(Packaged, new[] { need });

        var original = Packaged.Bytes.ToArray();
        var differing = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToList();
        Assert.Equal(new[] { (int)need.FlagsOffset }, differing);
        Assert.Equal(ElfImage.VerFlagWeak, (ushort)(original[differing[0]] ^ patched[differing[0]]));

        var reread = ElfImage.Parse(patched, "patched");
        Assert.True(reread.Needs.Single(n => n.Name == "GLIBCXX_3.4.32").IsWeak);
        Assert.All(reread.Needs.Where(n => n.Name != "GLIBCXX_3.4.32"), n => Assert.False(n.IsWeak));
    }

    [Fact]
    public void Weakening_a_version_whose_symbols_are_bound_is_refused_with_the_fix()
    {
        var used = Packaged.Needs.Single(n => n.Name == "GLIBCXX_3.4" && n.File == "libstdc++.so.6");
        var error = Assert.Throws<NativeLoadException>(() => ElfVersionPatcher.Weaken(Packaged, new[] { used }));
        Assert.Contains("GLIBCXX_3.4 ", error.Message);
        Assert.Contains("GCC 13", error.Message);
        Assert.Contains("LD_LIBRARY_PATH", error.Message);
    }

    [Fact]
    public void The_libstdcxx_of_this_process_has_its_version_definitions_read()
    {
        var libstdcxx = ElfImage.Load(TorchSharpRuntime.FindLoadedLibStdCxx());
        Assert.Contains("GLIBCXX_3.4", libstdcxx.Definitions);
        Assert.Contains("CXXABI_1.3", libstdcxx.Definitions);
    }

    [Fact]
    public void A_file_that_is_not_ELF_is_rejected_naming_the_file()
    {
        var error = Assert.Throws<InvalidDataException>(() => ElfImage.Parse("not an elf file at all, clearly"u8.ToArray(), "/tmp/fake.so"));
        Assert.Contains("/tmp/fake.so", error.Message);
        Assert.Contains("not an ELF file", error.Message);
    }

    [Fact]
    public void A_truncated_ELF_file_is_rejected_naming_the_file()
    {
        var truncated = Packaged.Bytes[..4096].ToArray();
        var error = Assert.Throws<InvalidDataException>(() => ElfImage.Parse(truncated, "/tmp/truncated.so"));
        Assert.Contains("/tmp/truncated.so", error.Message);
    }
}

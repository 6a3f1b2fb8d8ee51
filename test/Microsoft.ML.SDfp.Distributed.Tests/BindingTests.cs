namespace Microsoft.ML.SDfp.Distributed.Tests;

/// <summary>The P/Invoke binding to libmpi.so.40, exercised by two real ranks under mpirun.</summary>
public sealed class BindingTests
{
    [Fact]
    public void Collectives_return_the_same_results_on_both_ranks()
    {
        var run = Mpirun.Run(2, "binding");
        run.AssertSucceeded();
        for (var rank = 0; rank < 2; rank++)
        {
            Assert.Equal("2", run.Line(rank, "size"));
            Assert.Equal("3", run.Line(rank, "sum"));
            Assert.Equal("0.5", run.Line(rank, "max"));
            Assert.Equal("10", run.Line(rank, "min"));
            Assert.Equal("0,7", run.Line(rank, "gather"));
            Assert.Equal("3.25", run.Line(rank, "bcast"));
            Assert.Equal("", run.Line(rank, "done"));
        }
    }

    [Fact]
    public void An_invalid_root_is_an_error_naming_the_call_and_MPIs_error_string_not_an_abort()
    {
        var run = Mpirun.Run(2, "binding");
        run.AssertSucceeded();
        for (var rank = 0; rank < 2; rank++)
        {
            var text = run.Line(rank, "invalid");
            Assert.StartsWith("root: MPI_Bcast 8 MPI_Bcast failed with MPI error 8: ", text); // MPI_ERR_ROOT = 8
            Assert.Contains("root", text[text.IndexOf("error 8:", StringComparison.Ordinal)..], StringComparison.OrdinalIgnoreCase);
        }
    }
}

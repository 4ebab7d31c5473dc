module org.flexidepth.consumer {
    requires org.flexidepth.llama;
}

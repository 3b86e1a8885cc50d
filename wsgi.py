from recon import create_app

app = create_app()
